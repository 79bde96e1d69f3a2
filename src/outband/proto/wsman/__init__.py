"""proto/wsman"""
