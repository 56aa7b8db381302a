"""SASL mechanisms as sans-IO exchanges, shared by every front end that authenticates with SASL."""
