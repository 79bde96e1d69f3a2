"""proto/cim"""
