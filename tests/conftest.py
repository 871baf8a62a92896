pytest_plugins = ["tests.fixtures_kafka", "tests.fixtures_llm", "tests.fixtures_models"]
