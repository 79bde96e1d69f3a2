from outband.console.permissions import Role


async def test_health_and_login(anon, admin):
    reply = await anon.get("/api/health")
    assert reply.status_code == 200, reply.text
    me = await admin.get("/api/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["role"] == Role.ADMIN
