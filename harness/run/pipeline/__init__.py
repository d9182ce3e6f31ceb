"""The `run` job: inputs checked before a model loads, the main pass and every registered check, the report built
and written (an interrupted run too), and `models export`'s agreement step."""
