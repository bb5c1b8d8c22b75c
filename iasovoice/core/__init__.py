"""The I/O-free heart of a call: events in, actions out; no Ray, no sockets, no clocks of its own."""
