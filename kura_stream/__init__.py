"""kura_stream."""
