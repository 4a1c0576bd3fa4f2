"""callbridge: put an AI voice agent on an Azure Communication Services phone number."""

__version__ = "0.1.0"
