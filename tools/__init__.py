"""Developer tools (training, rendering); never imported by the runtime."""
