"""Tools agents call: the registry, the built-ins, HTTP tools and safe egress."""
