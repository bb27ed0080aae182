"""Inference providers behind one protocol (base.py), chosen by a registry (registry.py)."""
