"""The composition root: the `radio` command line, the demo and the simulator launcher. It
builds the controller's service and hands it to the HTTP face (`api.create_app`); the only
package that may import every other one (controller, api, firmware_sim)."""
