pytest_plugins = ["tests.fixtures_kafka"]
