"""Reports for the province: what was aired, alerts and their confirmations, node availability
and faults, per area and period, each figure traceable to the log rows it came from."""
