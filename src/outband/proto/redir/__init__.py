"""The AMT redirection protocol (SOL, IDE-R, KVM on 16994/16995) as sans-I/O codecs and state machines."""
