"""One call's bridge between a telephony media leg and an agent session."""
