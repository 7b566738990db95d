"""Float to int8: calibration on the user's data, the quantizer, and the quality measured at conversion."""
