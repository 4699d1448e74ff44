"""USD export of simulated scenes (`usd-core`, no Isaac Sim needed) and the Franka asset conventions."""
