from rest_framework.pagination import PageNumberPagination


class TransactionPagination(PageNumberPagination):
    """``?page=`` and ``?page_size=`` (capped, so one request cannot ask for
    the whole table); an out-of-range page is a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
