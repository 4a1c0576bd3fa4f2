"""The browser phone edge: a call from a web page's microphone, bridged like an ACS call."""
