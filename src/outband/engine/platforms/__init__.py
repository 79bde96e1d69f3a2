"""engine/platforms"""
