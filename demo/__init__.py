"""``make demo``: the sample app run locally (moto, the Lambda emulator, a Loki receiver), counted in Loki."""
