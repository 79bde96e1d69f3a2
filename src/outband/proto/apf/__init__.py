"""proto/apf"""
