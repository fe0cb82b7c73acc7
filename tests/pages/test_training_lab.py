"""The Training lab shared by a class, under AppTest: two student sessions and a teacher on one
runs folder, real (tiny) engine runs.

- a run belongs to the session that started it: the other session watches it (no Cancel, no
  Delete) and ``dashboard.jobs`` refuses it too;
- a start while a run trains queues, the page shows the place in line; a per-session cap;
- teacher mode: no secret -> the page says how to set one; a wrong password is refused; the right
  one (or an ``st.login`` address listed in the secrets) manages every run: takes a run out of
  the queue, cancels another session's run; the queue then moves with no page open.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import jobs

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "b3_training_lab.py")
START = "FormSubmitter:b3_start-Start training"
SECRET = "correct horse battery staple"


@pytest.fixture
def runs(page_models, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(page_models))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(root))
    yield root
    for job in jobs.list_jobs(root):  # never leave a training process or a queue behind
        if job.active or job.queued:
            jobs.cancel(job.run_id, root)
            jobs.wait(job.run_id, root, 60)


def session(secrets: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if secrets:
        at.secrets["training_lab"] = secrets
    if user is not None:
        at.user = user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def who(at: AppTest) -> jobs.Who:
    return jobs.Who(f"session:{at.session_state['b3_session_token']}")


def text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def start(at: AppTest, name: str) -> None:
    at.selectbox(key="b3_model").set_value("denoiser").run()
    at.number_input(key="b3_epochs_denoiser").set_value(1)
    at.number_input(key="b3_count_denoiser").set_value(0)  # all 60000 at batch 8: trains until cancelled
    at.number_input(key="b3_batch_denoiser").set_value(8)
    at.number_input(key="b3_width_denoiser").set_value(4)
    at.text_input(key="b3_name").set_value(name)
    at.button(key=START).click().run()
    assert not at.exception, [e.value for e in at.exception]


def watch(at: AppTest, run_id: str) -> None:
    at.selectbox(key="b3_watch").set_value(run_id).run()
    assert not at.exception, [e.value for e in at.exception]


def keys(at: AppTest, kind: str = "button") -> set[str]:
    return {w.key for w in at.get(kind) if w.key}


def delete_choices(at: AppTest) -> list[str]:
    picks = [s for s in at.selectbox if s.key == "b3_delete_pick"]
    return list(picks[0].options) if picks else []


def test_owner_watcher_queue_and_teacher(runs):
    t0 = time.monotonic()
    ann, bob = session(), session()
    assert who(ann).owner != who(bob).owner  # two sessions, two owners
    assert "Teacher mode is off" in text(ann) and "teacher_password" in text(ann)

    # ann starts a run; bob sees it, may watch it, not cancel or delete it
    start(ann, "ann-run")
    assert any("ann-run" in s.value for s in ann.success)
    bob.run()
    assert "ann-run" in bob.selectbox(key="b3_watch").value
    assert "b3_cancel" in keys(ann) and "b3_cancel" not in keys(bob)
    assert "You can watch this run" in text(bob) and "started by **you**" in text(ann)
    with pytest.raises(jobs.JobForbidden):
        jobs.cancel("ann-run", runs, who=who(bob))

    # bob's starts queue, with their place in line, up to the cap
    start(bob, "bob-1")
    assert any("Queued run **bob-1**" in i.value and "number 1 in line" in i.value for i in bob.info)
    start(bob, "bob-2")
    assert any("number 2 in line" in i.value for i in bob.info)
    start(bob, "bob-3")
    assert any(f"at most {jobs.MAX_QUEUED} per session" in w.value for w in bob.warning)
    assert not (runs / "bob-3").exists()
    assert jobs.running_job(runs).run_id == "ann-run"
    assert "b3_unqueue" in keys(bob)  # bob watches his queued run and may take it out
    ann.run()
    watch(ann, "bob-1")
    assert "number 1 in line" in text(ann) and "b3_unqueue" not in keys(ann)
    assert "bob-1" not in delete_choices(ann)  # ann's delete list holds only ann's runs
    table = ann.dataframe[0].value
    assert table.set_index("run").loc["bob-2", "status"] == "queued (#2)"
    assert table.set_index("run").loc["ann-run", "owner"] == "you"

    # teacher mode: a wrong password is refused, the right one manages every run
    teacher = session(secrets={"teacher_password": SECRET})
    teacher.text_input(key="b3_teacher_pw").set_value("guess")
    teacher.button(key="FormSubmitter:b3_teacher_form-Enter teacher mode").click().run()
    assert any("Wrong password" in e.value for e in teacher.error)
    assert "You are in **teacher mode**" not in text(teacher)
    teacher.text_input(key="b3_teacher_pw").set_value(SECRET)
    teacher.button(key="FormSubmitter:b3_teacher_form-Enter teacher mode").click().run()
    assert not teacher.exception, [e.value for e in teacher.exception]
    assert "You are in **teacher mode**" in text(teacher)
    watch(teacher, "bob-2")
    teacher.button(key="b3_unqueue").click().run()
    assert jobs.load_job("bob-2", runs).status == "cancelled"
    assert "bob-2" in delete_choices(teacher)
    watch(teacher, "ann-run")
    assert "b3_cancel" in keys(teacher)
    teacher.button(key="b3_cancel").click().run()
    assert not teacher.exception, [e.value for e in teacher.exception]
    assert jobs.wait("ann-run", runs, timeout=60).status == "cancelled"

    # nothing trains now: the queue thread starts bob-1 with no page asking
    deadline = time.monotonic() + 30
    while jobs.load_job("bob-1", runs).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.load_job("bob-1", runs).status in jobs.ACTIVE + ("finished", "failed")
    bob.run()
    watch(bob, "bob-1")
    assert "b3_cancel" in keys(bob) and "started by **you**" in text(bob)
    bob.button(key="b3_cancel").click().run()
    assert jobs.wait("bob-1", runs, timeout=60).status == "cancelled"
    bob.run()
    assert set(delete_choices(bob)) == {"bob-1", "bob-2"}  # his own; ann's run is not his
    print(f"\n[training lab] two sessions + teacher: {time.monotonic() - t0:.1f} s")


def test_teacher_by_sign_in(runs):
    listed = session(secrets={"teachers": ["prof@school.edu"]},
                     user={"is_logged_in": True, "email": "Prof@School.edu"})
    assert "You are in **teacher mode**" in text(listed)
    other = session(secrets={"teachers": ["prof@school.edu"]},
                    user={"is_logged_in": True, "email": "student@school.edu"})
    assert "You are in **teacher mode**" not in text(other)
    assert "Runs you start belong to **student@school.edu**" in text(other)


def test_unreadable_teacher_settings_are_said_not_swallowed(runs):
    """A ``[training_lab]`` section the lab cannot use: teacher mode stays off, and the page says
    why (it used to be swallowed silently)."""
    at = session(secrets={"teachers": 5})
    warned = " ".join(w.value for w in at.warning)
    assert "Teacher mode is off" in warned and "[training_lab]" in warned
    assert "You are in **teacher mode**" not in text(at)


def test_the_class_recipe_is_the_default_and_its_run_draws_digits(runs):
    """flow-class starts on the class recipe (its settings in the form); a run of it shows an ETA
    while it trains and then 3 of each digit drawn with its weights, with the classifier's reading."""
    at = session()
    assert at.selectbox(key="b3_model").value == "flow-class"
    assert at.radio(key="b3_recipe_flow-class").value == "class"
    assert at.number_input(key="b3_width_flow-class_class").value == 32
    assert at.number_input(key="b3_batch_flow-class_class").value == 128
    assert at.number_input(key="b3_count_flow-class_class").value == 0  # all 60 000 images
    at.number_input(key="b3_count_flow-class_class").set_value(256)
    at.number_input(key="b3_width_flow-class_class").set_value(4)
    at.text_input(key="b3_name").set_value("recipe-run")
    at.button(key=START).click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = jobs.wait("recipe-run", runs, timeout=180)
    assert job.status == "finished", job.message
    assert "--recipe class" in job.command and "--checkpoint-every 20.0" in job.command
    at.run()
    watch(at, "recipe-run")
    caption = next(img.caption for el in at.get("image") for img in el.proto.imgs
                   if img.caption.startswith("recipe-run: 3 of each digit"))
    assert "finished weights" in caption and "the lab's classifier reads" in caption
    at.radio(key="b3_recipe_flow-class").set_value("course").run()  # the course's settings come back
    assert at.number_input(key="b3_width_flow-class").value == 64
