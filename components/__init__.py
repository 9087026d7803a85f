"""TFX-style pipeline components: each reads input artifacts and writes one output artifact."""
