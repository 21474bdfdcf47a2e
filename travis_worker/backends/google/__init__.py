"""The parts of the `gce` backend (`backends/gce.py`): its settings, the Compute API client
and its types, credentials, the insert body, the boot, the running instance, zones,
images and the shared rate limit. Only this room touches google-cloud-compute."""
