"""Rendering for the synth source: procedural performances, a piano synthesizer
and a top-down keyboard video."""
