"""Networks as plain nn.Modules built from dataclass configs."""
