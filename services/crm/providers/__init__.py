"""Where crm talks to the outside world: the object store that keeps documents' bytes, comms'
messages (Messenger), workflow webhooks (Webhooks)."""
