"""kura_stream/adapters."""
