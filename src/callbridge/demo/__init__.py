"""The demo agent "Contoso support line": its tools and their bundled data."""
