"""What the tools app tells the apps above it, without importing them.

A draft belongs to a subject: today a conversation (a chat turn proposed it),
later a workflow step.  The app that owns the subject connects receivers and
carries the news there; the tools app only announces it.

- ``draft_changed(draft, event_type)``: a draft was confirmed, rejected,
  expired, executed or failed outside a turn (``event_type`` is
  ``draft.updated``).  Receivers post it to the draft's subject.
- ``draft_outcome(draft, text)``: what came of a draft, in words the agent
  reads on its next turn (e.g. "executed. Result: …").
"""

from django.dispatch import Signal

draft_changed = Signal()
draft_outcome = Signal()
