"""TodoService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import todo_pb2, todo_service_pb2_grpc
from givance.crm.v1 import todo_service_pb2 as pb
from google.type import decimal_pb2

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import enum_in, from_date, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument, Violations
from chassis.resource import etag
from services.crm.handlers import todos as handlers
from services.crm.handlers.todos import Todo, TodoFields

_STATUS_IN = {
    todo_pb2.TODO_STATUS_UNSPECIFIED: None, todo_pb2.TODO_STATUS_PENDING: "pending",
    todo_pb2.TODO_STATUS_IN_PROGRESS: "in_progress", todo_pb2.TODO_STATUS_COMPLETED: "completed",
    todo_pb2.TODO_STATUS_CANCELLED: "cancelled",
}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items() if v}
_PRIORITY_IN = {
    todo_pb2.TODO_PRIORITY_UNSPECIFIED: None, todo_pb2.TODO_PRIORITY_LOW: "low",
    todo_pb2.TODO_PRIORITY_MEDIUM: "medium", todo_pb2.TODO_PRIORITY_HIGH: "high",
}
_PRIORITY_OUT = {v: k for k, v in _PRIORITY_IN.items() if v}


def fields_from_proto(t: todo_pb2.Todo) -> TodoFields:
    """Plain values; what cannot be read at all is left in `problems` for the handler to report."""
    f = TodoFields(
        title=t.title, description=t.description, donor_id=t.donor_id, project_id=t.project_id,
        assigned_to=t.assignee_id, is_ai_generated=t.is_ai_generated, ai_reasoning=t.ai_reasoning,
        ai_confidence=t.ai_confidence.value if t.HasField("ai_confidence") else "",
    )
    if t.HasField("due_date"):
        try:
            f.due_date = from_date(t.due_date)
        except ValueError as exc:
            f.problems["due_date"] = ("todo.due_date", f"is not a valid date: {exc}")
    f.priority = enum_in(t.priority, _PRIORITY_IN, f.problems, "priority", "todo.priority")
    return f


def todo_to_proto(t: Todo) -> todo_pb2.Todo:
    confidence = t.ai_confidence
    return todo_pb2.Todo(
        id=str(t.id), organization_id=str(t.organization_id), title=t.title,
        description=t.description or "", due_date=date_pb(t.due_date),
        priority=_PRIORITY_OUT[t.priority], status=_STATUS_OUT[t.status],
        donor_id=str(t.donor_id or ""), project_id=str(t.project_id or ""),
        assignee_id=str(t.assigned_to or ""), creator_id=str(t.created_by or ""),
        is_ai_generated=t.is_ai_generated, ai_reasoning=t.ai_reasoning or "",
        ai_confidence=decimal_pb2.Decimal(value=str(confidence)) if confidence is not None else None,
        complete_time=timestamp(t.completed_at), completer_id=str(t.completed_by or ""),
        create_time=timestamp(t.created_at), update_time=timestamp(t.updated_at),
        etag=etag(t.version),
    )


def _caller() -> str:
    principal = context.current().principal
    return principal.subject if principal else ""


class TodoServicer(todo_service_pb2_grpc.TodoServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateTodo(self, request: pb.CreateTodoRequest, ctx) -> pb.CreateTodoResponse:
        status = request.todo.status
        if status not in _STATUS_IN:
            raise InvalidArgument.field("todo.status", f"unknown status {status}")
        row = await handlers.create_todo(self.db, context.current().tenant_id, _caller(),
                                         fields_from_proto(request.todo), _STATUS_IN[status], request.request_id)
        return pb.CreateTodoResponse(todo=todo_to_proto(row))

    async def GetTodo(self, request: pb.GetTodoRequest, ctx) -> pb.GetTodoResponse:
        row = await handlers.get_todo(self.db, context.current().tenant_id, request.id)
        return pb.GetTodoResponse(todo=todo_to_proto(row))

    async def ListTodos(self, request: pb.ListTodosRequest, ctx) -> pb.ListTodosResponse:
        v = Violations()
        if request.status not in _STATUS_IN:
            v.add("status", f"unknown status {request.status}")
        dates = {}
        for attr in ("due_before", "due_after"):
            dates[attr] = None
            if request.HasField(attr):
                try:
                    dates[attr] = from_date(getattr(request, attr))
                except ValueError as exc:
                    v.add(attr, f"is not a valid date: {exc}")
        v.raise_if_any()
        rows, token = await handlers.list_todos(
            self.db, context.current().tenant_id, assignee_id=request.assignee_id, donor_id=request.donor_id,
            project_id=request.project_id, status=_STATUS_IN[request.status], due_before=dates["due_before"],
            due_after=dates["due_after"], page_size=request.page_size, page_token=request.page_token)
        return pb.ListTodosResponse(todos=[todo_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateTodo(self, request: pb.UpdateTodoRequest, ctx) -> pb.UpdateTodoResponse:
        row = await handlers.update_todo(self.db, context.current().tenant_id, request.todo.id, request.todo.etag,
                                         fields_from_proto(request.todo), list(request.update_mask.paths))
        return pb.UpdateTodoResponse(todo=todo_to_proto(row))

    async def _move(self, verb: str, request) -> todo_pb2.Todo:
        row = await handlers.move_todo(self.db, context.current().tenant_id, _caller(), verb, request.id,
                                       request.etag)
        return todo_to_proto(row)

    async def StartTodo(self, request: pb.StartTodoRequest, ctx) -> pb.StartTodoResponse:
        return pb.StartTodoResponse(todo=await self._move("start", request))

    async def CompleteTodo(self, request: pb.CompleteTodoRequest, ctx) -> pb.CompleteTodoResponse:
        return pb.CompleteTodoResponse(todo=await self._move("complete", request))

    async def CancelTodo(self, request: pb.CancelTodoRequest, ctx) -> pb.CancelTodoResponse:
        return pb.CancelTodoResponse(todo=await self._move("cancel", request))

    async def DeleteTodo(self, request: pb.DeleteTodoRequest, ctx) -> pb.DeleteTodoResponse:
        await handlers.delete_todo(self.db, context.current().tenant_id, request.id, request.etag)
        return pb.DeleteTodoResponse()
