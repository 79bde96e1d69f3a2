"""proto/redir"""
