"""The web console (live and past calls) and the browser phone's page."""
