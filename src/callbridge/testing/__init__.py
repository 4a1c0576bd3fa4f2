"""Test doubles for the services callbridge talks to, importable so that docs and manual
runs can use them too (`python -m callbridge.testing.fake_realtime --help`)."""
