"""The WebSocket edge: parse, authorise, call one action, reply."""
