"""The admin's test chat in a real browser: headless Chromium logs in as an
operator, opens the agent's page, sends a message over the websocket and
sees the streamed answer and the turn's status."""

import shutil

import pytest
from django.contrib.auth.models import Permission

from agenthub.testing import run_daphne
from chat.tests.helpers import make_live_agent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1300,1400",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(browser, condition, what, timeout=20):
    """Wait like WebDriverWait, but fail with where the browser actually is."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout).until(condition)
    except TimeoutException:
        pytest.fail(f"waited {timeout}s for {what}; the browser is at {browser.current_url} ({browser.title!r})")


def staff_operator(org):
    operator = org.users["operator"]
    operator.is_staff = True
    operator.save()
    operator.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["agents", "tools", "chat"]))
    return operator


def open_test_chat(browser, base, agent):
    """Logs in as the operator and opens the agent's page; returns the chat input."""
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("alpha-operator")
    browser.find_element(By.NAME, "password").send_keys("s3cret-Pass-for-tests")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The login POST must finish (and set the session cookie) before the
    # next navigation, or that navigation races it back to the login page.
    wait_for(browser, lambda d: "/admin/login/" not in d.current_url, "the login to finish")
    browser.get(f"{base}/admin/agents/agent/{agent.pk}/change/")
    return wait_for(browser, lambda d: d.find_element(By.ID, "test-chat-input"), "the test-chat panel")


def test_operator_chats_with_the_agent_from_its_admin_page(org_a, browser, tmp_path):
    from selenium.webdriver.common.by import By

    agent = make_live_agent(org_a.organization, slug="helper")
    operator = staff_operator(org_a)

    with run_daphne(log_path=tmp_path / "daphne.log") as base:
        box = open_test_chat(browser, base, agent)
        box.send_keys("Hello from a browser")
        browser.find_element(By.ID, "test-chat-send").click()
        wait_for(
            browser, lambda d: "tokens" in d.find_element(By.ID, "test-chat-status").text, "the answer", timeout=30
        )
        status = browser.find_element(By.ID, "test-chat-status").text
        log = browser.find_element(By.ID, "test-chat-log").text

    assert status.startswith("complete")
    assert log.startswith("you> Hello from a browser\nhelper> ")
    from chat.models import Conversation, Message

    conversation = Conversation.objects.get(agent=agent)
    assert conversation.channel == "admin"
    assert conversation.user == operator
    answer = Message.objects.get(conversation=conversation, role="assistant")
    assert answer.content in log


def test_the_test_chat_shows_tool_calls_and_drafts(org_a, browser, tmp_path):
    from selenium.webdriver.common.by import By

    agent = make_live_agent(org_a.organization, slug="helper", tools=["calculator", "send_email"])
    staff_operator(org_a)

    with run_daphne(log_path=tmp_path / "daphne.log") as base:
        box = open_test_chat(browser, base, agent)
        box.send_keys('calculator {"expression": "6*7"}')
        browser.find_element(By.ID, "test-chat-send").click()
        wait_for(browser, lambda d: "tokens" in d.find_element(By.ID, "test-chat-status").text, "the first answer")
        box.send_keys('send_email {"to": ["ops@example.com"], "subject": "Hi", "body": "Hello"}')
        browser.find_element(By.ID, "test-chat-send").click()
        wait_for(
            browser, lambda d: "[draft send_email: pending]" in d.find_element(By.ID, "test-chat-log").text, "the draft"
        )
        log = browser.find_element(By.ID, "test-chat-log").text
        link = browser.find_element(By.LINK_TEXT, "review it").get_attribute("href")

    assert "[tool calculator started (inline)]" in log
    assert "[tool calculator: ok]" in log and '"result": 42' in log
    from tools.models import Draft

    draft = Draft.objects.get()
    assert link.endswith(f"/admin/tools/draft/{draft.pk}/change/")
