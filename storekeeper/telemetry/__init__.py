"""Cold-chain telemetry: sensors, readings, downsampled series and out-of-range alerts."""
