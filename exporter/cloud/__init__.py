"""The Huawei Cloud API client: signing, authentication, transport, typed calls, errors."""
