"""When a container with reverse mounts outlives its command, and our cidfile."""

from remote_docker import forward, mounted_run
from remote_docker.forward import OUTPUT_PLACEHOLDER, Plan, Terminal


def plan_for(argv: list[str]) -> Plan:
    return forward.plan(argv, {}, Terminal(False, False, False), cwd="/", translate=False)


def test_which_containers_outlive_the_command() -> None:
    assert not mounted_run.outlives_the_command(plan_for(["run", "--rm", "img"]))
    assert mounted_run.outlives_the_command(plan_for(["run", "img"]))
    assert mounted_run.outlives_the_command(plan_for(["run", "-d", "--rm", "img"]))
    assert mounted_run.outlives_the_command(plan_for(["create", "img"]))


def test_our_cidfile_is_added_only_when_needed() -> None:
    foreground = plan_for(["run", "--rm", "img"])
    assert mounted_run._container_id_file(foreground) is None
    detached = plan_for(["--debug", "run", "-d", "img", "sh"])
    local, ours = mounted_run._container_id_file(detached)
    assert ours and detached.argv[:5] == ["docker", "--debug", "run", "--cidfile",
                                          OUTPUT_PLACEHOLDER + "cid0"]
    assert detached.outputs == [("cid0", local)]
