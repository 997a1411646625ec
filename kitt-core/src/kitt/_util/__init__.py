"""Private utilities every capability may use: the one JSON converter (`converter`),
YAML files with line numbers (`yamlfile`), KITT's folder and crash-safe writes (`files`),
signal handling (`signals`), optional extras (`extras`) and the version (`version`)."""
