"""What a user runs: cli (the invert-fast command), demo (the real cases end to end), compare (INVERT
vs Network Dissection), report (the self-contained HTML report).
"""
