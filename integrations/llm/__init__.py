"""The model layer: providers behind one interface, and a router that picks
one by model name with fallbacks.  See :mod:`integrations.llm.types`."""
