import LoomCLI

await LoomCommand.runMain()
