"""Dialog brains for the offline agent: `flow` (a YAML profile) and `llm` (chat completions)."""
