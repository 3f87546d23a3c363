from kelly_edge.engine.clock import TempoGrid


def test_grid_steps_and_tempo_change_is_continuous() -> None:
    g = TempoGrid(120.0)
    assert g.step_s == 0.125
    assert g.time_of(16) == 2.0  # one 4/4 bar at 120 BPM
    assert g.step_in_bar(2.01) == 0 and g.step_in_bar(1.99) == 15
    g.set_bpm(60.0, 1.0)  # at step 8
    assert abs(g.position(1.0) - 8.0) < 1e-9
    assert abs(g.time_of(9) - 1.25) < 1e-9  # now a 16th is 0.25 s
