"""The services of Plakar Control Plane: scheduler, runner, history and api."""
