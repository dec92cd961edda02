"""Panel workload: from each person's earlier waves of a person-year panel, predict this wave's regression
target and an imbalanced class. One concept per module, imported from that module (nothing is re-exported)."""
