"""Making environments: Gymnasium ids, Atari games through ale-py, the memory task, and the state of
envs that a checkpoint can capture and restore."""
