"""kura_stream/stages."""
