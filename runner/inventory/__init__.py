"""What a server serves: `configs/servers.yaml` and `configs/models.yaml`, the live listing of a
LiteLLM proxy and the fallback file; hands the plan stage an `Inventory` of model ids with
metadata and the source it came from."""
