"""Agent backends behind one `AgentSession` interface."""
