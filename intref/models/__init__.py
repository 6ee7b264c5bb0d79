"""Model builders: float reference encoders, calibration, derivations and integer graphs."""
