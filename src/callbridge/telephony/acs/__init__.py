"""The Azure Communication Services edge: wire formats, tokens and Call Automation calls."""
